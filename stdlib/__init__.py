"""rasp2d.stdlib"""
