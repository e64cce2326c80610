"""adapters/mqtt"""
