#!/bin/bash
# Image lift (docs/multitask_images.md): 20 demos with agentview at 84x84 plus proprioception (no object
# state); pretrain METHOD for 300 epochs, then evaluate 50 episodes.
#   benchmarks/image_lift.sh bc 0 && benchmarks/image_lift.sh postbc 0
set -euo pipefail
M=$1; S=$2; OUT=${OUT:-runs/images}
DATA=$OUT/lift_img84.hdf5
[ -f "$DATA" ] || postbc collect --task lift --episodes 20 --out "$DATA" --camera agentview --image-size 84 --quiet
EXTRA=()
[ "$M" = postbc ] && EXTRA=(--ensemble-kind shared --ensemble-size 5 --bootstrap state_action --ensemble-epochs 300 --alpha 1)
postbc pretrain --method "$M" --dataset "$DATA" --obs-keys robot0_eef_pos robot0_eef_quat robot0_gripper_qpos agentview_image \
  --out "$OUT/lift_img_${M}_s$S" --seed "$S" --epochs 300 --quiet "${EXTRA[@]}"
postbc eval --checkpoint "$OUT/lift_img_${M}_s$S" --episodes 50 --num-envs 2 --seed 1000 --out "$OUT/lift_img_${M}_s$S/eval50.json" --quiet
