"""Keras 2.3.1's built-in layers on graphk: each trains a few steps inside a small model,
its loss goes down, and its output shape is the one Keras computes statically."""
import os
import tempfile

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "graphk.backend"
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="graphk-keras-home-"))

import graphk.keras2  # noqa: E402

graphk.keras2.install_shims()
keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

L = layers
CASES = {
    "conv1d_causal_dilated": ((12, 3), lambda: L.Conv1D(4, 3, padding="causal", dilation_rate=2)),
    "conv2d_strided_same": ((8, 8, 2), lambda: L.Conv2D(4, 3, strides=2, padding="same")),
    "conv2d_channels_first": ((2, 8, 8), lambda: L.Conv2D(4, 3, data_format="channels_first")),
    "conv2d_transpose": ((5, 5, 2), lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same")),
    "separable_conv1d": ((10, 3), lambda: L.SeparableConv1D(4, 3, depth_multiplier=2)),
    "separable_conv2d": ((8, 8, 3), lambda: L.SeparableConv2D(4, 3)),
    "depthwise_conv2d": ((8, 8, 3), lambda: L.DepthwiseConv2D(3, depth_multiplier=2)),
    "conv3d": ((5, 5, 5, 2), lambda: L.Conv3D(3, 2)),
    "conv3d_transpose": ((3, 3, 3, 2), lambda: L.Conv3DTranspose(2, 2, strides=2)),
    "locally_connected1d": ((8, 3), lambda: L.LocallyConnected1D(4, 3)),
    "locally_connected2d": ((6, 6, 2), lambda: L.LocallyConnected2D(3, 3)),
    "max_pooling1d": ((8, 3), lambda: L.MaxPooling1D(2)),
    "average_pooling2d_same": ((7, 7, 2), lambda: L.AveragePooling2D(2, padding="same")),
    "max_pooling3d": ((4, 4, 4, 2), lambda: L.MaxPooling3D(2)),
    "global_average_pooling2d": ((6, 6, 3), lambda: L.GlobalAveragePooling2D()),
    "global_max_pooling1d": ((6, 3), lambda: L.GlobalMaxPooling1D()),
    "upsampling2d_bilinear": ((4, 4, 2), lambda: L.UpSampling2D(2, interpolation="bilinear")),
    "upsampling3d": ((3, 3, 3, 2), lambda: L.UpSampling3D(2)),
    "zero_padding2d": ((5, 5, 2), lambda: L.ZeroPadding2D(((1, 2), (0, 1)))),
    "cropping2d": ((6, 6, 2), lambda: L.Cropping2D(((1, 1), (2, 0)))),
    "reshape": ((4, 6), lambda: L.Reshape((3, 8))),
    "permute": ((4, 6), lambda: L.Permute((2, 1))),
    "repeat_vector": ((5,), lambda: L.RepeatVector(3)),
    "time_distributed_dense": ((4, 5), lambda: L.TimeDistributed(L.Dense(3))),
    "leaky_relu": ((6,), lambda: L.LeakyReLU(0.2)),
    "prelu": ((6,), lambda: L.PReLU()),
    "elu": ((6,), lambda: L.ELU()),
    "thresholded_relu": ((6,), lambda: L.ThresholdedReLU(0.1)),
    "softmax": ((6,), lambda: L.Softmax()),
    "relu_max_value": ((6,), lambda: L.ReLU(max_value=1.0, negative_slope=0.1)),
    "batch_norm_channels_first": ((3, 4, 4), lambda: L.BatchNormalization(axis=1)),
    "spatial_dropout2d": ((6, 6, 3), lambda: L.SpatialDropout2D(0.3)),
    "gaussian_noise": ((6,), lambda: L.GaussianNoise(0.1)),
    "gaussian_dropout": ((6,), lambda: L.GaussianDropout(0.2)),
    "alpha_dropout": ((6,), lambda: L.AlphaDropout(0.2)),
    "activity_regularization": ((6,), lambda: L.ActivityRegularization(l1=0.01, l2=0.01)),
    "dense_regularized": ((6,), lambda: L.Dense(4, kernel_regularizer="l2",
                                                  kernel_constraint="max_norm")),
    "lambda": ((6,), lambda: L.Lambda(lambda t: t * 2.0 + 1.0)),
    "masking_lstm": ((5, 3), lambda: [L.Masking(0.0), L.LSTM(4)]),
    "conv_lstm2d": ((3, 5, 5, 2), lambda: L.ConvLSTM2D(2, 3)),
    "simple_rnn_sequences": ((5, 3), lambda: L.SimpleRNN(4, return_sequences=True)),
    "gru_reset_after": ((5, 3), lambda: L.GRU(4, reset_after=True)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_trains_inside_a_model(name):
    np.random.seed(0)
    input_shape, make = CASES[name]
    made = make()
    stack = made if isinstance(made, list) else [made]
    layer = stack[0]
    model = keras.Sequential([L.InputLayer(input_shape)] + stack)
    if len(model.output_shape) > 2:
        model.add(L.Flatten())
    model.add(L.Dense(1))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    rng = np.random.RandomState(1)
    x = rng.normal(size=(64,) + input_shape).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    features = keras.Model(model.inputs, model.layers[0].output).predict(x[:4])
    expected = layer.compute_output_shape((4,) + input_shape)
    assert features.shape == tuple(expected)


def test_functional_merge_layers():
    np.random.seed(0)
    a = L.Input((6,))
    b = L.Input((6,))
    merged = [L.add([a, b]), L.subtract([a, b]), L.multiply([a, b]), L.average([a, b]),
              L.maximum([a, b]), L.minimum([a, b]), L.concatenate([a, b]), L.dot([a, b], axes=1)]
    out = L.Dense(1)(L.concatenate(merged))
    model = keras.Model([a, b], out)
    model.compile("adam", "mse")
    rng = np.random.RandomState(0)
    xa, xb = rng.normal(size=(64, 6)), rng.normal(size=(64, 6))
    y = (xa * xb).sum(1, keepdims=True)
    losses = model.fit([xa, xb], y, epochs=5, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


def test_whole_model_save_and_load_keeps_predictions_and_optimizer_state(tmp_path):
    np.random.seed(0)
    model = keras.Sequential([L.Conv2D(3, 3, activation="relu", input_shape=(6, 6, 1)),
                              L.Flatten(), L.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    rng = np.random.RandomState(0)
    x = rng.normal(size=(32, 6, 6, 1)).astype("float32")
    y = keras.utils.to_categorical(rng.randint(0, 2, 32), 2)
    model.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / "model.h5")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for saved, restored in zip(model.optimizer.get_weights(), loaded.optimizer.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    loaded.fit(x, y, epochs=1, verbose=0)  # training resumes from the restored state
