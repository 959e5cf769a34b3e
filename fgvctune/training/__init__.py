"""The training room: a run from its configuration to its checkpoints.

    trainer.py      `train` and the Trainer: set-up, the epoch loop, the run's files
    step.py         the compiled train step (forward, loss, gradients, update; loss scale, accumulation,
                    clipping, EMA)
    strategy.py     what trains and how fast: --freeze, --linear-probe, --lr-mult, --layer-decay
    balance.py      imbalanced classes: --class-weights (the balanced sampler is data/pipeline.py's)
    lrfind.py       `fgvctune lr-find`: the learning-rate sweep
    distributed.py  data-parallel workers under msrun
    progress.py     the progress bar and each epoch's line
    interrupts.py   Ctrl-C and SIGTERM stop a run after its last saved epoch

May import: data, models, results (a run writes its report), fgvctune.config, errors, fileio. Never the
commands (cli, comparison, tutorial). Named `training`, not `train`: a subpackage `fgvctune.train` would
replace the function `fgvctune.train` once imported.
"""
