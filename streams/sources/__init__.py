"""Feed decoders: bytes/lines of one input format → typed records and rejects."""
