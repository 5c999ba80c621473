from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [line.strip() for line in (here / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

setup(
    name="thinkserve",
    version="0.1.0",
    description="Serve any Hugging Face transformers model through the Anthropic Messages API, "
                "with enforced extended-thinking budgets.",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["app", "app.*"]),
    install_requires=requirements,
    entry_points={"console_scripts": ["thinkserve=app.cli:main"]},
)
