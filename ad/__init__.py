"""dad.ad"""
