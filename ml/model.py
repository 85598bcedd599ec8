"""The classifier: ImageNet MobileNetV2 split into a frozen lower part and a trainable upper part.

Training only runs the upper part on cached lower-part activations (cheap on CPU); the saved
model chains both, so serving takes RGB pixels 0..255 and returns logits.
"""

from __future__ import annotations

from ml.pretrained import imagenet_mobilenet_v2

POOLED = "pooled"  # cut point meaning "whole backbone frozen, pooled features" (the seed recipe)


def split_backbone(input_size: int, cut: str):
    """(lower, upper or None, weights source); upper maps the cut activations to pooled features."""
    import keras

    base, source = imagenet_mobilenet_v2(input_size, include_top=False)
    base.trainable = False
    if cut == POOLED:
        pooled = keras.layers.GlobalAveragePooling2D(name="pool")(base.output)
        return keras.Model(base.input, pooled, name="lower"), None, source
    lower = keras.Model(base.input, base.get_layer(cut).output, name="lower")
    upper = keras.Model(base.get_layer(cut).output, base.output, name="upper")
    for layer in upper.layers:
        # Set per layer: the flag does not propagate back from a sub-model built on shared layers.
        # BN carries folded ImageNet statistics; updating it from small CPU batches ruins it.
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    return lower, upper, source


def build_head(feature_shape: tuple[int, ...], upper, classes: int, dropout: float):
    """Trainable model from cached activations to logits."""
    import keras

    inputs = keras.Input(feature_shape, name="features")
    x = inputs
    if upper is not None:
        x = upper(x)
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    logits = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, logits, name="head")


def build_full_model(input_size: int, lower, head):
    """Serving model: RGB 0..255 -> MobileNetV2's [-1, 1] scaling -> lower -> head -> logits."""
    import keras

    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit_range")(inputs)
    logits = head(lower(x))
    return keras.Model(inputs, logits, name="wbc_classifier")


def lower_with_scaling(input_size: int, lower):
    """The frozen lower part with the same input scaling as serving (for feature extraction)."""
    import keras

    inputs = keras.Input((input_size, input_size, 3))
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    return keras.Model(inputs, lower(scaled))


def with_features(model):
    """The same layers and weights, returning {"logits", "features"}; features feed the final Dense.

    Works on the chain models this project builds (serving model, head, tiny test model): every
    layer feeds the next, and the last layer is either the logits Dense or a sub-model ending in it.
    The domain check describes the training data in these penultimate features.
    """
    import keras

    inputs = keras.Input(model.input.shape[1:], name=model.layers[0].name)
    x = inputs
    for layer in model.layers[1:-1]:
        x = layer(x)
    last = model.layers[-1]
    if isinstance(last, keras.Model):
        outputs = with_features(last)(x)
        return keras.Model(inputs, outputs, name=f"{model.name}_with_features")
    return keras.Model(inputs, {"logits": last(x), "features": x}, name=f"{model.name}_with_features")
