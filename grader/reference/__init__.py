"""Reference baselines (LeNet-5, ResNet-20, ResNet-18): trained here, graded like students."""
