"""Policy tasks: gymnasium environments, PPO teachers, and DAgger-style relabelling for distillation."""
