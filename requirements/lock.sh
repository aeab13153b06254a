#!/usr/bin/env bash
# `make locks`: regenerate the images' lock files (requirements/*.lock) from requirements/*.in
# with uv, hashes for every distribution of every pinned version. Our own packages (the ./paths
# in the .in files) are resolved from this checkout and left out of the locks: the images build
# them as wheels with --no-index. Versions already pinned for development (requirements/dev.txt)
# are kept, so the images run what the tests ran.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
for name in build operator trainer trainer-cuda trainer-vendor; do
  constraints=()
  [[ $name == build ]] || constraints=(--constraint requirements/dev.txt)
  "$uv" pip compile "requirements/$name.in" "${constraints[@]}" --quiet --generate-hashes \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --no-emit-package densenet-contract --no-emit-package densenet-operator \
    --no-emit-package densenet-trainer --custom-compile-command "make locks" \
    --output-file "requirements/$name.lock"
  echo "requirements/$name.lock: $(grep -c '^[a-z0-9]' "requirements/$name.lock") packages"
done
