"""Raw sources to the standard table: mock generation, conditioning, validation, partitioning."""
