"""The grpc.aio server: servicers, settings, launcher, OpenAPI generation."""
