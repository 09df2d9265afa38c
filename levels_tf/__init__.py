"""levels-tf: one infra.yaml to the Terraform and Packer of a whole AWS platform."""

__version__ = "0.1.0"
