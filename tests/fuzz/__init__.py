"""Generated inputs: property-based tests of the request models and intakes, and a schema-driven fuzzer."""
