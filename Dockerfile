# The ctxrec image: every step of the compiled pipeline runs it (KFP v2 / Vertex Pipelines), and
# so do Beam workers (Dataflow's --sdk_container_image, Flink/Spark's --environment_config).
# Build: docker build -t IMAGE . && docker push IMAGE   (then `ctxrec compile-kfp --image IMAGE`)
FROM tensorflow/tfx:1.16.0

# TFRS 0.7.7 and TFX 1.16 need Keras 2: tf-keras must be selected before TensorFlow loads.
ENV TF_USE_LEGACY_KERAS=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Keep in step with kubeflow/image.py (PROJECT_DIR). The sources go to src/, not here: a ctxrec/
# folder in the working directory would shadow the installed package.
WORKDIR /ctxrec

# What the base image (tfx 1.16, TensorFlow, Beam) lacks, resolved against the project's lock.
COPY constraints.txt src/constraints.txt
RUN pip install --constraint src/constraints.txt \
      tensorflow-recommenders==0.7.7 scann==1.3.2 tf-keras==2.16.0 matplotlib==3.9.2 \
      fastapi==0.162.5 uvicorn==0.54.0 \
      build==1.2.2

# The project as an sdist (dist/ctxrec-VERSION.tar.gz, staged to Beam workers as
# --extra_package) and the same sdist installed, non-editable: every component imports ctxrec.*
# by module path, so no module file is uploaded.
COPY . src/
RUN python -m build --sdist --outdir dist src \
    && pip install --no-deps dist/ctxrec-*.tar.gz \
    && python -c "import ctxrec.pipeline.training_pipeline, ctxrec.trainer.run"

# The base image's ENTRYPOINT (the Beam SDK worker boot) stays: KFP gives each step its command.
