//! Dense symmetric linear algebra for the GP on row-major slices: Cholesky with jitter retries,
//! triangular solves and the inverse from the factor. Inner loops are contiguous dot products.

/// A lower-triangular Cholesky factor `L` (row-major, `n × n`) with `L Lᵀ = A + jitter I`.
#[derive(Debug, Clone)]
pub struct Cholesky {
    n: usize,
    l: Vec<f64>,
    /// Diagonal jitter that was needed to make the factorisation succeed.
    pub jitter: f64,
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four accumulators let the compiler vectorise without reassociation flags.
    let mut acc = [0.0; 4];
    let chunks = a.len() / 4;
    for c in 0..chunks {
        let i = 4 * c;
        acc[0] += a[i] * b[i];
        acc[1] += a[i + 1] * b[i + 1];
        acc[2] += a[i + 2] * b[i + 2];
        acc[3] += a[i + 3] * b[i + 3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for i in 4 * chunks..a.len() {
        s += a[i] * b[i];
    }
    s
}

impl Cholesky {
    /// Factorises the symmetric matrix `a` (row-major, only the lower triangle is read),
    /// retrying with growing diagonal jitter. Returns `None` if even the largest jitter fails.
    pub fn new(a: &[f64], n: usize) -> Option<Self> {
        if a.len() != n * n {
            return None;
        }
        let mean_diag = (0..n).map(|i| a[i * n + i]).sum::<f64>() / n.max(1) as f64;
        let scale = if mean_diag.is_finite() && mean_diag > 0.0 {
            mean_diag
        } else {
            1.0
        };
        let mut jitter = 0.0;
        for attempt in 0..7 {
            if let Some(l) = Self::try_factor(a, n, jitter) {
                return Some(Cholesky { n, l, jitter });
            }
            jitter = scale * 1e-10 * 10f64.powi(attempt);
        }
        None
    }

    fn try_factor(a: &[f64], n: usize, jitter: f64) -> Option<Vec<f64>> {
        let mut l = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let (row_i, row_j) = if i == j {
                    (&l[i * n..i * n + j], &l[j * n..j * n + j])
                } else {
                    let (head, tail) = l.split_at(i * n);
                    (&tail[..j], &head[j * n..j * n + j])
                };
                let s = a[i * n + j] - dot(row_i, row_j);
                if i == j {
                    let d = s + jitter;
                    if d.is_nan() || d <= 0.0 || !d.is_finite() {
                        return None;
                    }
                    l[i * n + i] = d.sqrt();
                } else {
                    l[i * n + j] = s / l[j * n + j];
                }
            }
        }
        Some(l)
    }

    /// Matrix size.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Solves `L v = b` in place.
    pub fn solve_lower(&self, b: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            let row = &self.l[i * n..i * n + i];
            b[i] = (b[i] - dot(row, &b[..i])) / self.l[i * n + i];
        }
    }

    /// Solves `Lᵀ w = v` in place.
    pub fn solve_upper(&self, v: &mut [f64]) {
        let n = self.n;
        for i in (0..n).rev() {
            v[i] /= self.l[i * n + i];
            let wi = v[i];
            let row = &self.l[i * n..i * n + i];
            for (vj, lij) in v[..i].iter_mut().zip(row) {
                *vj -= lij * wi;
            }
        }
    }

    /// Solves `A x = b` in place.
    pub fn solve(&self, b: &mut [f64]) {
        self.solve_lower(b);
        self.solve_upper(b);
    }

    /// `ln det A = 2 Σ ln L_ii`.
    pub fn log_det(&self) -> f64 {
        (0..self.n)
            .map(|i| self.l[i * self.n + i].ln())
            .sum::<f64>()
            * 2.0
    }

    /// Returns the factor of the matrix grown by one row/column: `[[A, c], [cᵀ, d]]`, in O(n²).
    /// `None` when the new pivot is not positive (the point duplicates the data exactly).
    pub fn append(&self, c: &[f64], d: f64) -> Option<Self> {
        let n = self.n;
        let mut v = c.to_vec();
        self.solve_lower(&mut v);
        let pivot = d + self.jitter - dot(&v, &v);
        if pivot.is_nan() || pivot <= 0.0 || !pivot.is_finite() {
            return None;
        }
        let m = n + 1;
        let mut l = vec![0.0; m * m];
        for i in 0..n {
            l[i * m..i * m + i + 1].copy_from_slice(&self.l[i * n..i * n + i + 1]);
        }
        l[n * m..n * m + n].copy_from_slice(&v);
        l[n * m + n] = pivot.sqrt();
        Some(Cholesky {
            n: m,
            l,
            jitter: self.jitter,
        })
    }

    /// The inverse `A⁻¹` (row-major, full symmetric).
    pub fn inverse(&self) -> Vec<f64> {
        let n = self.n;
        // U = (L⁻¹)ᵀ stored row-major: row j of U is column j of L⁻¹ (zero before j).
        let mut u = vec![0.0; n * n];
        for j in 0..n {
            let row_j = &mut u[j * n..(j + 1) * n];
            row_j[j] = 1.0 / self.l[j * n + j];
            for i in j + 1..n {
                let s = dot(&self.l[i * n + j..i * n + i], &row_j[j..i]);
                row_j[i] = -s / self.l[i * n + i];
            }
        }
        let mut inv = vec![0.0; n * n];
        for a in 0..n {
            for b in 0..=a {
                let v = dot(&u[a * n + a..(a + 1) * n], &u[b * n + a..(b + 1) * n]);
                inv[a * n + b] = v;
                inv[b * n + a] = v;
            }
        }
        inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize) -> Vec<f64> {
        // A = B Bᵀ + n I with a deterministic B.
        let b: Vec<f64> = (0..n * n)
            .map(|k| ((k * 37 % 11) as f64 - 5.0) / 7.0)
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>()
                    + if i == j { n as f64 } else { 0.0 };
            }
        }
        a
    }

    #[test]
    fn solve_and_inverse_agree_with_the_matrix() {
        for n in [1, 2, 5, 13] {
            let a = spd(n);
            let c = Cholesky::new(&a, n).unwrap();
            assert_eq!(c.jitter, 0.0);
            let x_true: Vec<f64> = (0..n).map(|i| i as f64 - 2.0).collect();
            let mut b: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| a[i * n + j] * x_true[j]).sum())
                .collect();
            c.solve(&mut b);
            for (x, t) in b.iter().zip(&x_true) {
                assert!((x - t).abs() < 1e-10);
            }
            let inv = c.inverse();
            for i in 0..n {
                for j in 0..n {
                    let v: f64 = (0..n).map(|k| a[i * n + k] * inv[k * n + j]).sum();
                    assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-10);
                }
            }
        }
    }

    #[test]
    fn append_matches_a_fresh_factorisation() {
        let a = spd(6);
        let sub: Vec<f64> = (0..5)
            .flat_map(|i| (0..5).map(move |j| (i, j)))
            .map(|(i, j)| a[i * 6 + j])
            .collect();
        let grown = Cholesky::new(&sub, 5)
            .unwrap()
            .append(&a[30..35], a[35])
            .unwrap();
        let fresh = Cholesky::new(&a, 6).unwrap();
        for (x, y) in grown.l.iter().zip(&fresh.l) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn log_det_matches_a_diagonal_matrix() {
        let a = vec![2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 5.0];
        let c = Cholesky::new(&a, 3).unwrap();
        assert!((c.log_det() - 30f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn singular_matrices_get_jitter_and_garbage_fails_cleanly() {
        // Rank one: [[1, 1], [1, 1]].
        let c = Cholesky::new(&[1.0, 1.0, 1.0, 1.0], 2).unwrap();
        assert!(c.jitter > 0.0);
        assert!(Cholesky::new(&[-1.0, 0.0, 0.0, -1.0], 2).is_none());
        assert!(Cholesky::new(&[f64::NAN, 0.0, 0.0, 1.0], 2).is_none());
        assert!(Cholesky::new(&[1.0], 2).is_none());
    }
}
