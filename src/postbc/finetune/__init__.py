"""RL finetuning of a frozen or trainable pretrained diffusion policy.

One module per idea: `replay` (buffer with safetensors save/load), `networks` (MLP, vectorized
critic ensemble, tanh-Gaussian actor), `chunk_env` (vector envs stepping whole action chunks,
reward transforms, crash recovery), `loop` (shared train / eval / log / checkpoint / resume loop),
`rollouts_file` (the Best-of-N rollouts HDF5 format), and one module per algorithm:
`dsrl` (DSRL-SAC), `dsrl_na` (DSRL noise aliasing), `dppo`, `iql` + `best_of_n`.
"""
