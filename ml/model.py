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


# Layers whose channel statistics describe the domain: block_2_add is the frozen ImageNet part
# (it sees stain, camera and framing before any training on cells), block_5_add the first
# fine-tuned blocks. Measured on validation (docs/domain-gate.md), they separate one lab from the
# other far better than the penultimate features, which training made lab-invariant on purpose.
DOMAIN_LAYERS = ("block_2_add", "block_5_add")


def channel_statistics(tensor):
    """Per-channel mean and standard deviation over the spatial axes: a layer's "style"."""
    import keras

    return keras.ops.concatenate(
        [keras.ops.mean(tensor, axis=(1, 2)), keras.ops.std(tensor, axis=(1, 2))], axis=-1
    )


def with_features(model, layers: tuple[str, ...] = DOMAIN_LAYERS):
    """The same layers and weights, returning {"logits", "features"} for the domain check.

    features are the channel statistics of `layers`, in network order; a model without them (the
    tiny test model) gives the input of its final Dense instead. Works on the chain models this
    project builds (serving model, head): each layer feeds the next; a sub-model that holds a
    domain layer is tapped inside, one that ends in the logits Dense is followed down.
    """
    import keras

    inputs = keras.Input(model.input.shape[1:], name=model.layers[0].name)
    logits, taps, penultimate = _follow_chain(model, inputs, layers)
    features = keras.ops.concatenate(taps, axis=-1) if taps else penultimate
    return keras.Model(inputs, {"logits": logits, "features": features}, name=f"{model.name}_with_features")


def _follow_chain(model, x, layers: tuple[str, ...]):
    """(output, tapped layers' statistics, input of the last layer) of a chain model applied to x."""
    import keras

    taps = []
    for layer in model.layers[1:-1]:
        x, layer_taps = _tapped_call(layer, x, layers)
        taps.extend(layer_taps)
    last = model.layers[-1]
    if isinstance(last, keras.Model):
        output, last_taps, penultimate = _follow_chain(last, x, layers)
        return output, taps + last_taps, penultimate
    return last(x), taps, x


def _tapped_call(layer, x, layers: tuple[str, ...]):
    import keras

    names = [name for name in layers if isinstance(layer, keras.Model) and _has_layer(layer, name)]
    if not names:
        return layer(x), []
    # A clone has a graph of its own: a sub-model cut out of a larger model (upper) shares its
    # layers' output tensors with that model, so they are not reachable from its own input.
    source = keras.models.clone_model(layer)
    source.set_weights(layer.get_weights())
    tapped = keras.Model(source.input, [source.output, *(source.get_layer(name).output for name in names)])
    output, *activations = tapped(x)
    return output, [channel_statistics(activation) for activation in activations]


def _has_layer(model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)
