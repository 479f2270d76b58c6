"""rasp2d.backends"""
