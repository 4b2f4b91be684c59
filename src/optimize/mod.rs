//! Model optimization for edge boards, a pure library (no server): model intake and graph
//! analysis, data and preprocessing, evaluation, the board estimator and the recommender.
//!
//! Data flow: `model` (+ `external`, `tensor`) loads an ONNX file → `graph` summarises it
//! (`liveness` for peak memory) → `data` (+ `npy`) prepares inputs → `runner` executes with
//! tract → `evaluate` measures → `estimate` predicts board costs from `boards` and the fitted
//! `calibrate` model → `recommend` picks a variant.

pub mod boards;
pub mod calibrate;
pub mod data;
mod dtypes;
pub mod error;
pub mod estimate;
pub mod evaluate;
pub mod external;
pub mod graph;
pub mod images;
pub mod liveness;
pub mod model;
pub mod npy;
pub mod recommend;
pub mod runner;
pub mod techniques;
pub mod tensor;
pub mod validation;

pub use error::{OptimizeError, Result};
