"""One-line messages from TensorFlow op errors (tfrnncomp/errors.py)."""

from tfrnncomp import errors

# What a bfloat16 SavedModel exported before the fix of
# tfrnncomp/layers/precision.py raised on an AVX2-only CPU (shortened).
_GRAPH_ERROR = (
    "Graph execution error:\n\nDetected at node encoder/conv/BiasAdd defined "
    "at (most recent call last):\n<stack traces unavailable>\nValue for attr "
    "'T' of bfloat16 is not in the list of allowed values: half, float, "
    "double, int8, qint8\n\t; NodeDef: {{node encoder/conv/BiasAdd}}; "
    "Op<name=_FusedConv2D; signature=input:T, filter:T>\n\t "
    "[[StatefulPartitionedCall/encoder/conv/BiasAdd]] "
    "[Op:__inference_signature_wrapper_encode_4587]")


def test_the_cause_of_a_graph_error_is_kept_with_a_hint():
  message = errors.op_error_message(_GRAPH_ERROR)
  assert message.startswith("Value for attr 'T' of bfloat16 is not in the "
                            "list of allowed values: half, float, double, "
                            "int8, qint8 (")
  assert "NodeDef" not in message and "\n" not in message
  assert "tools/export.py --savedmodel" in message


def test_plain_messages_pass_and_long_ones_are_cut():
  assert errors.op_error_message(
      "indices[3] = 9 is not in [0, 4)\n\t [[node x]]") == (
          "indices[3] = 9 is not in [0, 4)")
  assert errors.op_error_message("") == "unknown error"
  assert errors.op_error_message("Graph execution error:") == (
      "Graph execution error:")
  long = errors.op_error_message("x" * 1000)
  assert len(long) == 300 and long.endswith("...")
