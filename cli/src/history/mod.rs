//! Execution history → story, in three steps, all pure (events in, values
//! out): [`note`] is the vocabulary (a [`Note`] per thing that happened, the
//! [`Ending`], the [`Progress`] a display shows); [`narrate`] reads events
//! one at a time (as `watch` receives them) into notes ([`Tracker`]);
//! [`visits`] folds the same notes into the states in order, with
//! durations, for `history`.

pub mod narrate;
pub mod note;
pub mod visits;

pub use narrate::{story, Tracker};
pub use note::{
    abbreviate, approval_commands, short_name, Ending, Note, Progress, WeightRole, What,
};
pub use visits::{visits, visits_of, Visit};
