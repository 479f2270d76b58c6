"""rasp2d.lang"""
