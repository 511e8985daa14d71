"""The Beam wrappers: reading and decoding inputs, the RunInference model handler and rows, writing the tables."""
