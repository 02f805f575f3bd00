//! One handler per Lambda function.
