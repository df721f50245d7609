"""Keras layers of the recurrent codecs."""

from tfrnncomp.layers.associative_lstm import AssociativeLSTMCell
from tfrnncomp.layers.binarizer import Binarizer, binarize, stochastic_binarize
from tfrnncomp.layers.conv_gru import ConvGRUCell, ResidualGRUCell
from tfrnncomp.layers.conv_lstm import ConvLSTMCell
from tfrnncomp.layers.conv_rnn_cell import ConvRNNCell
from tfrnncomp.layers.gdn import GDN
from tfrnncomp.layers.res_gdn import ResGDN
from tfrnncomp.layers.scalable_quantizer import (ScalableQuantizer,
                                                 channel_range, dequantize,
                                                 normalized_levels, quantize)

CELLS = {
    "lstm": ConvLSTMCell,
    "gru": ConvGRUCell,
    "residual_gru": ResidualGRUCell,
    "associative_lstm": AssociativeLSTMCell,
}

__all__ = [
    "AssociativeLSTMCell", "Binarizer", "CELLS", "ConvGRUCell", "ConvLSTMCell",
    "ConvRNNCell", "GDN", "ResGDN", "ResidualGRUCell", "ScalableQuantizer",
    "binarize", "channel_range", "dequantize", "normalized_levels", "quantize",
    "stochastic_binarize",
]
