"""Vision model builders (cnn, resnet, mobilenetv2), registered by name."""

BUILDERS: dict = {}
