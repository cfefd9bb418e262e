# A Shopstream worker, run from the repository tree (the project is never pip-installed).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
COPY .ci/requirements.py .ci/
RUN python .ci/requirements.py > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt
COPY streams streams
COPY domain domain
COPY agents agents
COPY tables tables
COPY web web
COPY ops ops
ENV SHOPSTREAM_WEB_HOST=0.0.0.0 \
    SHOPSTREAM_DATA_DIR=/data
VOLUME /data
EXPOSE 6066
CMD ["python", "-m", "streams", "worker", "--loglevel", "info"]
