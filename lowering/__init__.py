"""dad.lowering"""
