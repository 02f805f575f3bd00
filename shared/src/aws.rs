//! One adapter per AWS service.
