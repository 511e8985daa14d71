"""Entry point of the Flex Template launcher (FLEX_TEMPLATE_PYTHON_PY_FILE): the job's CLI."""
import sys

from pipeline.console import configure_console

if __name__ == "__main__":
    configure_console(sys.argv[1:])  # before TensorFlow and Beam load: both log as they do
    from pipeline.run import main

    main()
