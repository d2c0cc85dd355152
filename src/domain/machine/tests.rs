//! Unit tests of the core: no runtime, exact effects.
