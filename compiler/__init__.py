"""rasp2d.compiler"""
