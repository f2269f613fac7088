"""The conformance matrix: what each stage does with each architecture family users bring. A cell is
`OK` (it works within the bounds the matrix test checks) or a fragment of the one-line refusal it gives.
`BELOW_BOUND` marks INT8 cells refused here because agreement with FP32 fell under 0.98 (the bound is
met either way: a file at or above 0.98, or a refusal that says so; another CPU kind may land on
either side). README.md shows this table (`tests/conformance/test_matrix.py` checks that the two agree)."""

from __future__ import annotations

OK = "ok"
BELOW_BOUND = "< min_agreement 0.98"
NOT_PRUNED = "recurrent layers are not pruned"
NO_GRU_KERNEL = "has no INT8 GRU kernel, static or dynamic"
LSTM_DYNAMIC_ONLY = "use mode: dynamic"
NO_GEMM = "would run entirely in float"
NO_FAKE_QUANT = "cannot fake-quantize inside the"

STAGES = ("prune ratio", "prune latency", "int8 static", "int8 dynamic", "qad", "export", "bench ort-cpu", "bench openvino-cpu")
FAMILY_NAMES = (
    "residual_cnn",
    "inverted_residual",
    "concat_branches",
    "se_gating",
    "grouped_conv",
    "cnn1d",
    "gru",
    "lstm",
    "transformer_encoder",
    "mlp_layernorm",
)

EXPECTED: dict[str, dict[str, str]] = {family: dict.fromkeys(STAGES, OK) for family in FAMILY_NAMES}
EXPECTED["se_gating"].update({"int8 static": BELOW_BOUND, "int8 dynamic": BELOW_BOUND})
EXPECTED["gru"].update(
    {"prune ratio": NOT_PRUNED, "prune latency": NOT_PRUNED, "int8 static": NO_GRU_KERNEL, "int8 dynamic": NO_GRU_KERNEL}
)
EXPECTED["lstm"].update({"prune ratio": NOT_PRUNED, "prune latency": NOT_PRUNED, "int8 static": LSTM_DYNAMIC_ONLY})
EXPECTED["mlp_layernorm"].update({"int8 dynamic": NO_GEMM})
for _family in ("gru", "lstm", "transformer_encoder"):
    EXPECTED[_family]["qad"] = NO_FAKE_QUANT

INT8_MODE = {"gru": None, "lstm": "dynamic"}
"""The INT8 model the bench cells measure beside the FP32 one: static, unless the family has no better
path (None: no INT8 model, a GRU has no INT8 kernel)."""
