//! GPTQ's column sweep (Frantar et al. 2022), shared by int4 and int8: with H = 2XᵀX of a
//! layer's calibration inputs, the columns of W are rounded one at a time and each rounding
//! error is pushed onto the columns not yet rounded, through the upper Cholesky factor of
//! H⁻¹, so the layer's output (not each weight) stays close to the float one.

use ndarray::{Array2, ArrayView1};

use super::linalg;
use crate::optimize::error::{OptimizeError, Result};

/// Dampening: share of the mean diagonal added to H.
pub const PERCDAMP: f64 = 0.01;

/// Sweep W [rows, cols] against the (unnormalized) Hessian `h`. `round(row, r, c)` gets row
/// `r` as updated so far and returns the value its column `c` is rounded to (recording the
/// code itself). Starts from [`prepare`].
pub fn sweep(
    w: &Array2<f32>,
    h: &Array2<f64>,
    mut round: impl FnMut(ArrayView1<f64>, usize, usize) -> f64,
) -> Result<()> {
    let (rows, cols) = w.dim();
    let (mut w, u) = prepare(w, h)?;
    for c in 0..cols {
        let d = u[[c, c]];
        for r in 0..rows {
            let x = w[[r, c]];
            let err = (x - round(w.row(r), r, c)) / d;
            for j in c + 1..cols {
                w[[r, j]] -= err * u[[c, j]];
            }
        }
    }
    Ok(())
}

/// What a sweep over W (GPTQ's rounding, SparseGPT's pruning) starts from: W in f64 with the
/// weights of inputs that never fire (zero diagonal of `h`) zeroed, and the upper Cholesky
/// factor of the dampened H⁻¹.
pub fn prepare(w: &Array2<f32>, h: &Array2<f64>) -> Result<(Array2<f64>, Array2<f64>)> {
    let (hd, dead) = linalg::dampen(h, PERCDAMP);
    let u = linalg::inverse_upper_cholesky(&hd).ok_or_else(|| {
        OptimizeError::InvalidData("layer Hessian is not positive definite".into())
    })?;
    let mut w: Array2<f64> = w.mapv(|v| v as f64);
    for (c, d) in dead.iter().enumerate() {
        if *d {
            w.column_mut(c).fill(0.0);
        }
    }
    Ok((w, u))
}
