"""ImageNet MobileNetV2 weights without a network.

Keras' own ImageNet weights are used when their file is already in the Keras cache (or when
HEMATOVISION_ALLOW_WEIGHT_DOWNLOAD=1 lets Keras fetch them). Otherwise the quantisation-aware
TFLite MobileNetV2 in the pretrained folder is dequantised into the Keras architecture once and
cached as .npz: its batch-norm is folded into the convolutions, so each Keras BatchNormalization
becomes the identity plus the folded bias (and must stay frozen when fine-tuning).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ml.paths import cache_dir, pretrained_dir

TFLITE_NAME = "mobilenet_v2_1.0_224_quant.tflite"
CONVERTED_NAME = "mobilenet_v2_imagenet_from_tflite.npz"
KERAS_SIZES = (96, 128, 160, 192, 224)


def keras_weights_file(rows: int, include_top: bool) -> Path:
    """Where Keras keeps its downloaded MobileNetV2 ImageNet weights for this configuration."""
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    suffix = "" if include_top else "_no_top"
    return keras_home / "models" / f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}{suffix}.h5"


def _dequantize(interpreter, tensor_index: int) -> np.ndarray:
    details = interpreter._get_tensor_details(tensor_index, 0)
    params = details["quantization_parameters"]
    values = interpreter.get_tensor(tensor_index).astype(np.float64)
    shape = [1] * values.ndim
    shape[params["quantized_dimension"]] = -1
    scales = params["scales"].reshape(shape) if params["scales"].size > 1 else params["scales"]
    zero_points = (
        params["zero_points"].reshape(shape) if params["zero_points"].size > 1 else params["zero_points"]
    )
    return ((values - zero_points) * scales).astype(np.float32)


def _tflite_convolutions(path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(op name, float kernel, float bias) of every convolution, in execution order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    convolutions = []
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            _, kernel_index, bias_index = op["inputs"]
            kernel = _dequantize(interpreter, kernel_index)
            bias = _dequantize(interpreter, bias_index)
            convolutions.append((op["op_name"], kernel, bias))
    return convolutions


def _keras_kernel(op_name: str, kernel: np.ndarray) -> np.ndarray:
    # TFLite stores conv kernels as [out, h, w, in] and depthwise as [1, h, w, channels];
    # Keras wants [h, w, in, out] and [h, w, channels, 1].
    if op_name == "DEPTHWISE_CONV_2D":
        return kernel[0][..., np.newaxis]
    return kernel.transpose(1, 2, 3, 0)


def convert_tflite_weights(path: Path) -> dict[str, np.ndarray]:
    """Map the TFLite model's weights onto Keras MobileNetV2 layer names ("layer/slot" keys)."""
    import keras

    reference = keras.applications.MobileNetV2(weights=None, include_top=True)
    layers = reference.layers
    conv_positions = [
        i
        for i, layer in enumerate(layers)
        if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D)
    ]
    convolutions = _tflite_convolutions(path)
    if len(convolutions) != len(conv_positions) + 1:
        raise ValueError(f"{path}: {len(convolutions)} convolutions, expected {len(conv_positions) + 1}")
    weights: dict[str, np.ndarray] = {}
    for position, (op_name, kernel, bias) in zip(conv_positions, convolutions, strict=False):
        conv, norm = layers[position], layers[position + 1]
        weights[f"{conv.name}/0"] = _keras_kernel(op_name, kernel)
        _identity_batch_norm(weights, norm, bias)
    _, classifier_kernel, classifier_bias = convolutions[-1]
    # Row 0 of the 1001-way TFLite classifier is "background"; Keras has the 1000 ImageNet classes.
    weights["predictions/0"] = classifier_kernel[1:, 0, 0, :].T
    weights["predictions/1"] = classifier_bias[1:]
    return weights


def _identity_batch_norm(weights: dict[str, np.ndarray], norm, bias: np.ndarray) -> None:
    """gamma=1, mean=0, var=1-eps makes BN exactly x + beta; beta carries the folded bias."""
    channels = bias.shape[0]
    weights[f"{norm.name}/0"] = np.ones(channels, np.float32)
    weights[f"{norm.name}/1"] = bias
    weights[f"{norm.name}/2"] = np.zeros(channels, np.float32)
    weights[f"{norm.name}/3"] = np.full(channels, 1.0 - norm.epsilon, np.float32)


def converted_weights() -> dict[str, np.ndarray]:
    """The converted TFLite weights, computed once and cached in the cache dir."""
    cached = cache_dir() / CONVERTED_NAME
    if not cached.is_file():
        source = pretrained_dir() / TFLITE_NAME
        if not source.is_file():
            raise FileNotFoundError(f"no Keras ImageNet weights cached and no {source}")
        weights = convert_tflite_weights(source)
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_name(f"{cached.stem}.{os.getpid()}.tmp.npz")
        np.savez(temporary, **weights)
        temporary.replace(cached)
    with np.load(cached) as archive:
        return {key: archive[key] for key in archive.files}


def _load_into(model, weights: dict[str, np.ndarray]) -> None:
    for layer in model.layers:
        slots = sorted(int(key.split("/")[1]) for key in weights if key.split("/")[0] == layer.name)
        if slots:
            layer.set_weights([weights[f"{layer.name}/{slot}"] for slot in slots])


def imagenet_mobilenet_v2(input_size: int = 224, include_top: bool = True):
    """(Keras MobileNetV2 with ImageNet weights, weights-source description)."""
    import keras

    shape = (input_size, input_size, 3)
    rows = input_size if input_size in KERAS_SIZES else 224
    downloadable = os.environ.get("HEMATOVISION_ALLOW_WEIGHT_DOWNLOAD") == "1"
    if keras_weights_file(rows, include_top).is_file() or downloadable:
        model = keras.applications.MobileNetV2(input_shape=shape, include_top=include_top, weights="imagenet")
        return model, "keras-imagenet"
    model = keras.applications.MobileNetV2(input_shape=shape, include_top=include_top, weights=None)
    _load_into(model, converted_weights())
    return model, f"imported from {TFLITE_NAME} (dequantised, batch-norm folded)"
