"""Search spaces: one module per method; plain functions returning Ray Tune param spaces."""
