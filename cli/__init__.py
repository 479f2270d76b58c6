"""rasp2d.cli"""
