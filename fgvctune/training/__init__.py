"""The training room: a run from its configuration to its checkpoints.

Modules in their order: each imports only the ones above it (and the rooms below).

    progress.py     the progress bar and each epoch's line
    interrupts.py   Ctrl-C and SIGTERM stop a run after its last saved epoch
    balance.py      imbalanced classes: --class-weights (the balanced sampler is data/pipeline.py's)
    distributed.py  data-parallel workers under msrun
    step.py         the compiled train step (forward, loss, gradients, update; loss scale, accumulation,
                    clipping, EMA) and the EMA's weights put in the network for validation
    strategy.py     what trains and how fast: --freeze, --linear-probe, --lr-mult, --layer-decay
    setup.py        the Trainer's set-up: data, network, loss, rate schedule, the step of each phase
    tracking.py     --log-to: TensorBoard event files and MLflow runs, continued by a resumed run
    resume.py       the Trainer's checkpoints: best.ckpt and last.ckpt saved, last.ckpt restored (--resume)
    trainer.py      `train` and the Trainer: the epoch loop, results.txt, the curves and report at the end
    lrfind.py       `fgvctune lr-find`: the learning-rate sweep

May import: the base (fgvctune, config, errors, fileio, runtime), data, kernels, models, weights, results (a
run writes its report), and this room. Never the commands (cli, comparison, doctor, tuning, tutorial). Named
`training`, not `train`: a subpackage `fgvctune.train` would replace the function `fgvctune.train` once imported.
"""
