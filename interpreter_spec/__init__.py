"""rasp2d.interpreter_spec"""
