//! Attack-pattern detection.
