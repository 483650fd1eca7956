"""Config models per backend: each module holds its connection and its probe kinds."""
