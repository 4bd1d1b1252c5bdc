"""`postbc demo`: the whole pipeline on one task in one command.

`command` (DemoConfig, run: collect, pretrain BC and PostBC, evaluate, finetune, report),
`presets` (per-task sizes chosen by measurement), `coverage` (action spread where demos are scarce
vs dense, and its plots), `report` (the results table, plots and results.md).
"""
