"""The jobs: each module registers its jobs on import; :mod:`metarl.jobs.registry` imports a job's module when
the job is first asked for (``registry.get``), so importing this package loads no job."""
