//! `ecs-dns-canary`: the engineers' command line (placeholder, see issue 4).
fn main() {}
