"""benchmarks/frontends.py --profile's parts: the profiler's op times, and which ops count as the
filterbank convolution."""
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import frontends as frontends_benchmark


@pytest.mark.parametrize("name,is_conv", [
    ("leaf/gabor_conv/conv1d:_MklNativeConv2D", True),
    ("gradient_tape/conv1d/Conv2DBackpropFilter:_MklNativeConv2DBackpropFilter", True),
    ("gradient_tape/conv1d/Conv2DBackpropInput:Conv2DBackpropInput", True),
    ("conv1d:Conv2D", True),
    ("leaf/depthwise:_MklNativeDepthwiseConv2dNative", False),
    ("pool/DepthwiseConv2dNativeBackpropFilter:_MklNativeDepthwiseConv2dNativeBackpropFilter",
     False),
    ("conv_stats/Square:Square", False),
])
def test_filterbank_conv_is_the_waveform_convolution_only(name, is_conv):
  assert frontends_benchmark.is_filterbank_conv(name) == is_conv


def test_op_times_are_the_ops_of_one_call():
  taps = tf.constant(np.random.default_rng(0).standard_normal((33, 1, 8)), tf.float32)
  waveform = tf.constant(np.random.default_rng(1).standard_normal((2, 4000, 1)), tf.float32)

  @tf.function
  def conv_energy(x):
    return tf.reduce_sum(tf.square(tf.nn.conv1d(x, taps, stride=1, padding="SAME")))

  times = frontends_benchmark.op_times_ms(conv_energy, waveform)
  assert all(":" in name and "::" not in name and " " not in name for name in times)
  assert all(ms >= 0 for ms in times.values())
  kernels = {name.rpartition(":")[2] for name in times}
  assert any(kernel.endswith("Conv2D") for kernel in kernels), sorted(times)
  assert "Square" in kernels and "Sum" in kernels
  assert sum(frontends_benchmark.is_filterbank_conv(name) for name in times) == 1
