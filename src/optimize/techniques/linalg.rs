//! Small dense linear algebra for GPTQ / SparseGPT / least squares and the estimator's
//! calibration (f64, sizes up to ~1k).

use ndarray::Array2;

/// Lower Cholesky factor L (A = L Lᵀ), None when A is not positive definite.
pub fn cholesky(a: &Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let mut d = a[[j, j]];
        for k in 0..j {
            d -= l[[j, k]] * l[[j, k]];
        }
        if d.is_nan() || d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        l[[j, j]] = d;
        for i in j + 1..n {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]];
            }
            l[[i, j]] = s / d;
        }
    }
    Some(l)
}

/// Solves A x = b for symmetric positive definite A; None when A is not.
pub fn spd_solve(a: &Array2<f64>, b: &[f64]) -> Option<Vec<f64>> {
    let l = cholesky(a)?;
    let n = b.len();
    let mut z = b.to_vec();
    for i in 0..n {
        for k in 0..i {
            z[i] -= l[[i, k]] * z[k];
        }
        z[i] /= l[[i, i]];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            z[i] -= l[[k, i]] * z[k];
        }
        z[i] /= l[[i, i]];
    }
    Some(z)
}

/// Inverse of a lower-triangular matrix.
fn lower_inverse(l: &Array2<f64>) -> Array2<f64> {
    let n = l.nrows();
    let mut inv = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        inv[[j, j]] = 1.0 / l[[j, j]];
        for i in j + 1..n {
            let mut s = 0.0;
            for k in j..i {
                s -= l[[i, k]] * inv[[k, j]];
            }
            inv[[i, j]] = s / l[[i, i]];
        }
    }
    inv
}

/// Inverse of a symmetric positive definite matrix, adding growing dampening if needed.
pub fn spd_inverse(a: &Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mean_diag = (0..n).map(|i| a[[i, i]]).sum::<f64>() / n.max(1) as f64;
    let mut damp = 0.0;
    for _ in 0..8 {
        let mut m = a.clone();
        for i in 0..n {
            m[[i, i]] += damp;
        }
        if let Some(l) = cholesky(&m) {
            let li = lower_inverse(&l);
            return Some(li.t().dot(&li));
        }
        damp = if damp == 0.0 {
            1e-6 * mean_diag.max(1e-12)
        } else {
            damp * 10.0
        };
    }
    None
}

/// Upper Cholesky factor U of A⁻¹ (A⁻¹ = UᵀU), the form GPTQ/SparseGPT sweep column by column.
pub fn inverse_upper_cholesky(a: &Array2<f64>) -> Option<Array2<f64>> {
    let inv = spd_inverse(a)?;
    // A⁻¹ = L Lᵀ with L lower, so U = Lᵀ... but the sweep needs A⁻¹ = Uᵀ U with U upper,
    // which is the Cholesky of the reversed matrix; equivalently U = chol_upper(A⁻¹).
    let n = inv.nrows();
    let mut u = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        let mut d = inv[[i, i]];
        for k in 0..i {
            d -= u[[k, i]] * u[[k, i]];
        }
        if d.is_nan() || d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        u[[i, i]] = d;
        for j in i + 1..n {
            let mut s = inv[[i, j]];
            for k in 0..i {
                s -= u[[k, i]] * u[[k, j]];
            }
            u[[i, j]] = s / d;
        }
    }
    Some(u)
}

/// GPTQ-style dampened Hessian: dead inputs get a unit diagonal, then `percdamp`·mean(diag)
/// is added to the diagonal. Returns the dead columns too (their weights are zeroed).
pub fn dampen(h: &Array2<f64>, percdamp: f64) -> (Array2<f64>, Vec<bool>) {
    let n = h.nrows();
    let mut h = h.clone();
    let mut dead = vec![false; n];
    for i in 0..n {
        if h[[i, i]] <= 0.0 {
            h[[i, i]] = 1.0;
            dead[i] = true;
        }
    }
    let mean = (0..n).map(|i| h[[i, i]]).sum::<f64>() / n.max(1) as f64;
    for i in 0..n {
        h[[i, i]] += percdamp * mean;
    }
    (h, dead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn solves_a_small_spd_system_and_rejects_an_indefinite_one() {
        let x = spd_solve(&array![[4.0, 2.0], [2.0, 3.0]], &[2.0, 1.0]).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        assert!(spd_solve(&array![[1.0, 2.0], [2.0, 1.0]], &[1.0, 1.0]).is_none());
    }

    #[test]
    fn inverse_and_cholesky_agree() {
        let a = array![[4.0, 2.0, 0.6], [2.0, 5.0, 1.0], [0.6, 1.0, 3.0]];
        let inv = spd_inverse(&a).unwrap();
        let id = a.dot(&inv);
        for i in 0..3 {
            for j in 0..3 {
                assert!((id[[i, j]] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-9);
            }
        }
        let u = inverse_upper_cholesky(&a).unwrap();
        let back = u.t().dot(&u);
        for (x, y) in back.iter().zip(inv.iter()) {
            assert!((x - y).abs() < 1e-9);
        }
        assert_eq!(u[[1, 0]], 0.0);
    }

    #[test]
    fn not_positive_definite_is_none() {
        let a = array![[1.0, 2.0], [2.0, 1.0]];
        assert!(cholesky(&a).is_none());
    }
}
