//! BFGS with a strong-Wolfe line search, for the few-parameter likelihoods of the CLV
//! models.
//!
//! This is the quasi-Newton method `scipy.optimize.minimize(method="BFGS")` uses (and
//! so `lifetimes`): an inverse-Hessian approximation started at the identity, updated
//! with the BFGS formula after each step, and a line search that finds a step
//! satisfying the strong Wolfe conditions (c₁ = 1e-4, c₂ = 0.9; Nocedal & Wright,
//! *Numerical Optimization*, 2nd ed., algorithms 3.5 and 3.6, with safeguarded cubic
//! interpolation). Two details differ from scipy: after the first step the identity is
//! rescaled by yᵀs / yᵀy (N&W eq. 6.20), which saves iterations when the parameters'
//! scales differ, and a step whose objective is not finite (an overflowing parameter)
//! is halved instead of failing. The objective and its gradient come from one call, so
//! a line-search trial costs one pass over the data.

/// A smooth objective: returns f(x) and writes ∇f(x) into `grad`.
pub(crate) trait Objective {
    fn eval(&self, x: &[f64], grad: &mut [f64]) -> f64;
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Stop when the largest gradient component is at most this.
    pub tolerance: f64,
    /// Iteration limit.
    pub max_iterations: usize,
}

/// The end point of a minimisation.
#[derive(Debug, Clone)]
pub(crate) struct Minimum {
    pub x: Vec<f64>,
    pub f: f64,
    /// Largest absolute gradient component at `x`.
    pub gradient_norm: f64,
    pub iterations: usize,
    pub evaluations: usize,
    /// The gradient reached the tolerance, or the line search could not decrease f any
    /// more (machine precision) while the gradient was at most [`STALL_TOLERANCE`].
    pub converged: bool,
}

/// A stalled line search counts as convergence when the gradient is at most this.
pub(crate) const STALL_TOLERANCE: f64 = 1e-5;

const C1: f64 = 1e-4;
const C2: f64 = 0.9;
/// Trial steps of one line search: halvings after an overflow and doublings ...
const MAX_LINE_SEARCH: usize = 60;
/// ... and interpolations inside a bracket (scipy allows 10 as well).
const MAX_ZOOM: usize = 10;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn inf_norm(g: &[f64]) -> f64 {
    g.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// A point on the search line: step, f, directional derivative, gradient.
struct Trial {
    step: f64,
    f: f64,
    slope: f64,
    grad: Vec<f64>,
}

struct Line<'a, O: Objective> {
    obj: &'a O,
    x: &'a [f64],
    dir: &'a [f64],
    evaluations: usize,
    scratch: Vec<f64>,
}

impl<O: Objective> Line<'_, O> {
    fn at(&mut self, step: f64) -> Trial {
        for (i, s) in self.scratch.iter_mut().enumerate() {
            *s = self.x[i] + step * self.dir[i];
        }
        let mut grad = vec![0.0; self.x.len()];
        let f = self.obj.eval(&self.scratch, &mut grad);
        self.evaluations += 1;
        let finite = f.is_finite() && grad.iter().all(|g| g.is_finite());
        Trial {
            step,
            f: if finite { f } else { f64::INFINITY },
            slope: if finite {
                dot(&grad, self.dir)
            } else {
                f64::NAN
            },
            grad,
        }
    }
}

/// The minimiser of the cubic through (a, fa, da) and (b, fb, db), if it is defined.
fn cubic_min(a: &Trial, b: &Trial) -> Option<f64> {
    let d1 = a.slope + b.slope - 3.0 * (a.f - b.f) / (a.step - b.step);
    let disc = d1 * d1 - a.slope * b.slope;
    if disc < 0.0 {
        return None;
    }
    let d2 = (b.step - a.step).signum() * disc.sqrt();
    let t = b.step - (b.step - a.step) * (b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2);
    t.is_finite().then_some(t)
}

/// N&W algorithm 3.6: shrink [lo, hi] (lo satisfies sufficient decrease) to a point
/// satisfying the strong Wolfe conditions.
fn zoom<O: Objective>(
    line: &mut Line<'_, O>,
    f0: f64,
    slope0: f64,
    mut lo: Trial,
    mut hi: Trial,
) -> Option<Trial> {
    for _ in 0..MAX_ZOOM {
        let (left, right) = (lo.step.min(hi.step), lo.step.max(hi.step));
        let width = right - left;
        if width <= 1e-16 * right.max(1e-300) {
            break;
        }
        let guess = if hi.f.is_finite() {
            cubic_min(&lo, &hi)
        } else {
            None
        };
        let step = match guess {
            Some(t) if t > left + 0.1 * width && t < right - 0.1 * width => t,
            _ => 0.5 * (left + right),
        };
        let t = line.at(step);
        if !t.f.is_finite() || t.f > f0 + C1 * step * slope0 || t.f >= lo.f {
            hi = t;
        } else {
            if t.slope.abs() <= -C2 * slope0 {
                return Some(t);
            }
            if t.slope * (hi.step - lo.step) >= 0.0 {
                hi = std::mem::replace(&mut lo, t);
            } else {
                lo = t;
            }
        }
    }
    // No Wolfe point in the bracket at this precision: accept lo if it decreased f.
    (lo.step > 0.0 && lo.f < f0).then_some(lo)
}

/// N&W algorithm 3.5: a step along `dir` satisfying the strong Wolfe conditions.
fn line_search<O: Objective>(
    line: &mut Line<'_, O>,
    f0: f64,
    slope0: f64,
    first_step: f64,
) -> Option<Trial> {
    // The decrease a full step could bring is below the objective's last digits: f is
    // at its minimum to machine precision and further trials would only probe noise.
    if -slope0 * first_step <= 4.0 * f64::EPSILON * f0.abs() {
        return None;
    }
    let n = line.x.len();
    let mut prev = Trial {
        step: 0.0,
        f: f0,
        slope: slope0,
        grad: vec![0.0; n],
    };
    let mut step = first_step;
    for i in 0..MAX_LINE_SEARCH {
        let t = line.at(step);
        if !t.f.is_finite() {
            // Overflow: the step is far too long; come back towards the last good point.
            step = prev.step + 0.5 * (step - prev.step);
            if step - prev.step <= 1e-16 * step {
                return None;
            }
            continue;
        }
        if t.f > f0 + C1 * step * slope0 || (i > 0 && t.f >= prev.f) {
            return zoom(line, f0, slope0, prev, t);
        }
        if t.slope.abs() <= -C2 * slope0 {
            return Some(t);
        }
        if t.slope >= 0.0 {
            return zoom(line, f0, slope0, t, prev);
        }
        step *= 2.0;
        prev = t;
    }
    None
}

/// Minimise `obj` from `x0` with BFGS.
pub(crate) fn minimize<O: Objective>(obj: &O, x0: &[f64], settings: Settings) -> Minimum {
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut f = obj.eval(&x, &mut g);
    let mut evaluations = 1;
    let mut h = identity(n);
    let mut iterations = 0;
    let mut converged = false;
    let mut first = true;
    if !f.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Minimum {
            gradient_norm: f64::NAN,
            x,
            f,
            iterations,
            evaluations,
            converged,
        };
    }
    while iterations < settings.max_iterations {
        if inf_norm(&g) <= settings.tolerance {
            converged = true;
            break;
        }
        // Search direction −H g; restart from the identity if it is not a descent one.
        let mut dir: Vec<f64> = (0..n).map(|i| -dot(&h[i * n..(i + 1) * n], &g)).collect();
        let mut slope0 = dot(&g, &dir);
        if slope0.is_nan() || slope0 >= 0.0 {
            h = identity(n);
            dir = g.iter().map(|v| -v).collect();
            slope0 = dot(&g, &dir);
        }
        let first_step = if first {
            (1.0 / inf_norm(&g)).min(1.0)
        } else {
            1.0
        };
        let mut line = Line {
            obj,
            x: &x,
            dir: &dir,
            evaluations: 0,
            scratch: vec![0.0; n],
        };
        let found = line_search(&mut line, f, slope0, first_step);
        evaluations += line.evaluations;
        iterations += 1;
        let Some(t) = found else {
            converged = inf_norm(&g) <= STALL_TOLERANCE;
            break;
        };
        let s: Vec<f64> = dir.iter().map(|d| t.step * d).collect();
        let y: Vec<f64> = t.grad.iter().zip(&g).map(|(a, b)| a - b).collect();
        for (xi, si) in x.iter_mut().zip(&s) {
            *xi += si;
        }
        f = t.f;
        g = t.grad;
        let ys = dot(&y, &s);
        if ys > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            if first {
                let scale = ys / dot(&y, &y);
                h.iter_mut().for_each(|v| *v *= scale);
            }
            bfgs_update(&mut h, &s, &y, ys);
        }
        first = false;
    }
    if !converged && inf_norm(&g) <= settings.tolerance {
        converged = true;
    }
    Minimum {
        gradient_norm: inf_norm(&g),
        x,
        f,
        iterations,
        evaluations,
        converged,
    }
}

fn identity(n: usize) -> Vec<f64> {
    let mut h = vec![0.0; n * n];
    for i in 0..n {
        h[i * n + i] = 1.0;
    }
    h
}

/// H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ with ρ = 1 / yᵀs.
fn bfgs_update(h: &mut [f64], s: &[f64], y: &[f64], ys: f64) {
    let n = s.len();
    let rho = 1.0 / ys;
    // hy = H y, yhy = yᵀ H y
    let hy: Vec<f64> = (0..n).map(|i| dot(&h[i * n..(i + 1) * n], y)).collect();
    let yhy = dot(y, &hy);
    for i in 0..n {
        for j in 0..n {
            h[i * n + j] +=
                -rho * (s[i] * hy[j] + hy[i] * s[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rosenbrock;
    impl Objective for Rosenbrock {
        fn eval(&self, x: &[f64], g: &mut [f64]) -> f64 {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        }
    }

    /// Overflows (f = ∞) for x > 30: the line search must back off.
    struct Cliff;
    impl Objective for Cliff {
        fn eval(&self, x: &[f64], g: &mut [f64]) -> f64 {
            if x[0] > 30.0 {
                g[0] = f64::NAN;
                return f64::INFINITY;
            }
            g[0] = 2.0 * (x[0] - 20.0);
            (x[0] - 20.0).powi(2)
        }
    }

    #[test]
    fn minimises_rosenbrock() {
        let m = minimize(
            &Rosenbrock,
            &[-1.2, 1.0],
            Settings {
                tolerance: 1e-10,
                max_iterations: 200,
            },
        );
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-8 && (m.x[1] - 1.0).abs() < 1e-8,
            "{m:?}"
        );
    }

    #[test]
    fn backs_off_from_overflow() {
        let m = minimize(
            &Cliff,
            &[0.0],
            Settings {
                tolerance: 1e-10,
                max_iterations: 100,
            },
        );
        assert!(m.converged, "{m:?}");
        assert!((m.x[0] - 20.0).abs() < 1e-9, "{m:?}");
    }

    #[test]
    fn reports_the_iteration_limit() {
        let m = minimize(
            &Rosenbrock,
            &[-1.2, 1.0],
            Settings {
                tolerance: 1e-10,
                max_iterations: 3,
            },
        );
        assert!(!m.converged);
        assert_eq!(m.iterations, 3);
    }
}
