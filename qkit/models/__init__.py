"""Float PyTorch models that the kit trains or loads, before quantization."""
