#!/usr/bin/env bash
# The paper's recipe as it is written (examples/cub-200-2011.yaml: CUB at
# 224 px, a TorchScript DINO ViT-S/16 teacher, ImageNet-initialised
# ResNet-50 students), run whole through a coordinator and a worker at a
# toy size. Only sizes and paths change: a generated CUB-shaped JPEG tree
# (tools/make_cub_tree.py, 4 classes of 8 images at 32 px), a TorchScript
# teacher exported by tools/export_teacher.py from a small randomly
# initialised ViT (the --dino path's wrapper and head, another backbone),
# student weights from tools/export_weights.py; every row A-H and the
# teacher's linear head to SUCCEEDED and the results table.
# Usage: e2e_cub_recipe_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
source "$(dirname "$0")/e2e_lib.sh"
distill="$build/client/distill"
start=$(date +%s)
/usr/bin/python3 "$src/tools/make_cub_tree.py" "$work/data/CUB_200_2011" \
  --classes 4 --per-class 8 --size 32 >/dev/null
mkdir -p "$work/models"
/usr/bin/python3 "$src/tools/export_teacher.py" --random-vit --image-size 32 \
  --in-channels 3 --patch-size 8 --layers 1 --heads 2 --hidden 32 \
  --num-classes 200 --out "$work/models/dino_vits16.pt" >/dev/null 2>&1 ||
  fail "export_teacher.py"
/usr/bin/python3 "$src/tools/export_weights.py" --arch resnet50 --seed 3 \
  --out "$work/models/resnet50.pt" >/dev/null 2>&1 || fail "export_weights.py"
# The recipe, sizes and paths only.
sed -e "s|/data/CUB_200_2011|$work/data/CUB_200_2011|" \
    -e "s|/models/|$work/models/|g" \
    -e 's/image_size: 224/image_size: 32/' \
    -e 's/loader_threads: 8/loader_threads: 2/' \
    -e 's/epochs: 60/epochs: 1/' -e 's/epochs: 30/epochs: 1/' \
    -e 's/batch_size: 64/batch_size: 8/' -e 's/batch_size: 256/batch_size: 8/' \
    -e 's/tsne_points: 2000/tsne_points: 16/' \
    "$src/examples/cub-200-2011.yaml" >"$work/cub.yaml"
diff <(sed -e "s|$work||g" -e 's/[0-9]\+//g' "$work/cub.yaml") \
     <(sed -e 's/[0-9]\+//g' "$src/examples/cub-200-2011.yaml") >/dev/null ||
  fail "the recipe changed beyond sizes and paths: $(diff "$src/examples/cub-200-2011.yaml" "$work/cub.yaml")"
start_coordinator
start_worker worker --data_root="$work/data,$work/models"
"$distill" sweep "$work/cub.yaml" --wait >"$work/sweep.out" 2>&1 ||
  fail "the recipe's sweep: $(tail -30 "$work/sweep.out"; tail -20 "$work/worker.log")"
for row in A B C D E F G H; do
  grep -q "^ $row .*SUCCEEDED" "$work/sweep.out" || fail "row $row: $(cat "$work/sweep.out")"
done
grep -q "teacher ViT.*SUCCEEDED" "$work/sweep.out" || fail "no teacher row: $(cat "$work/sweep.out")"
sed -n '/^sweep /,$p' "$work/sweep.out"
echo "e2e cub recipe: examples/cub-200-2011.yaml at 32 px, 4 classes x 8 images: 9 runs SUCCEEDED in $(( $(date +%s) - start )) s"
