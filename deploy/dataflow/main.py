"""Entry point of the Flex Template launcher (FLEX_TEMPLATE_PYTHON_PY_FILE): the job's CLI."""
from pipeline.run import main

if __name__ == "__main__":
    main()
