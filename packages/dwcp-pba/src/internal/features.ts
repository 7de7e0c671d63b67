/** One packet per second (bytes/s): keeps logs finite on outages. Shared with training/train.py. */
export const EPS = 1500

/** z-score of the 80 % central interval of a normal distribution. */
export const Z80 = 1.2815515655446004

/** Arithmetic mean of the samples plus EPS: the level the LSTM's inputs and outputs are relative to. */
export const level = (xs: ArrayLike<number>): number => {
  let s = 0
  for (let i = 0; i < xs.length; i++) s += xs[i]!
  return s / xs.length + EPS
}

/** Standard deviation of log(x + EPS) over the samples: the baselines' spread estimate. */
export const logSpread = (xs: ArrayLike<number>): number => {
  const n = xs.length
  if (n < 2) return 0
  let s = 0
  for (let i = 0; i < n; i++) s += Math.log(xs[i]! + EPS)
  const mean = s / n
  let v = 0
  for (let i = 0; i < n; i++) v += (Math.log(xs[i]! + EPS) - mean) ** 2
  return Math.sqrt(v / (n - 1))
}
