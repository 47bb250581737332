# mindfed servers and scheduler: `docker build -t mindfed .`, then e.g.
#   docker run --rm mindfed scheduler --yaml_config /etc/mindfed/job.yaml --scheduler_manage_address 0.0.0.0:11202
# Servers need no torch (only devices and workers do), so the wheel is installed without extras.

# --- build stage: compile the C++ core and build the wheel ---------------------------------------------------------
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# MINDFED_WITH_CUDA stays OFF: servers aggregate on the CPU.
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir . -w /wheels

# --- runtime stage ---------------------------------------------------------------------------------------------------
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/mindfed-*.whl \
 && rm -rf /wheels
RUN useradd --create-home --uid 10001 --user-group mindfed
USER 10001:10001
WORKDIR /home/mindfed
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["mindfed"]
CMD ["--help"]
